with

source as (

    select * from {{ source('ecom', 'raw_customers') }}

),

renamed as (

    select

        ----------  ids
        id as customer_id,

        ---------- text
        first_name,
        last_name,
        first_name || ' ' || last_name as customer_name,
        lower(email) as email

    from source

)

select * from renamed
