with

customers as (

    select * from {{ ref('stg_customers') }}

),

orders as (

    select * from {{ ref('orders') }}

),

customer_orders as (

    select
        customer_id,

        min(ordered_on) as first_order,
        max(ordered_on) as most_recent_order,
        count(order_id) as number_of_orders,
        sum(item_count) as items_bought,
        sum(case when is_returned then 0 else amount_paid end) as customer_lifetime_value

    from orders

    group by customer_id

),

final as (

    select
        customers.customer_id,
        customers.customer_name,
        customers.email,
        customers.country_code,
        customers.signed_up_at,
        customer_orders.first_order,
        customer_orders.most_recent_order,
        coalesce(customer_orders.number_of_orders, 0) as number_of_orders,
        coalesce(customer_orders.items_bought, 0) as items_bought,
        coalesce(customer_orders.customer_lifetime_value, 0) as customer_lifetime_value,
        case
            when customer_orders.number_of_orders > 1 then 'returning'
            when customer_orders.number_of_orders = 1 then 'new'
            else 'prospect'
        end as customer_type

    from customers

    left join customer_orders
        on customers.customer_id = customer_orders.customer_id

)

select * from final
